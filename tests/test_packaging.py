"""The configs ship inside the package: a non-editable install finds them without the source tree, and Hydra
finds the sequential sweeper plugin in the wheel's hydra_plugins namespace."""

import subprocess
import sys
import zipfile

import pytest

from .conftest import REPO


@pytest.mark.slow
def test_wheel_carries_every_config_and_composes_without_the_source_tree(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"),
         str(REPO)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("mixupexp-*.whl")
    shipped = {n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("mixupexp/conf/") and n.endswith(".yaml")}
    in_repo = {f"mixupexp/conf/{p.relative_to(REPO / 'conf')}" for p in (REPO / "conf").rglob("*.yaml")}
    assert shipped == in_repo
    # every module of every stage ships, not only the top package
    modules = {n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("mixupexp/") and n.endswith(".py")
               and not n.startswith("mixupexp/conf/")}
    assert modules == {f"mixupexp/{p.relative_to(REPO / 'mixupexp')}" for p in (REPO / "mixupexp").rglob("*.py")}
    plugin = {n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("hydra_plugins/") and n.endswith(".py")}
    assert plugin == {str(p.relative_to(REPO)) for p in (REPO / "hydra_plugins").rglob("*.py")}
    assert not any(n == "hydra_plugins/__init__.py" for n in zipfile.ZipFile(wheel).namelist())  # a namespace
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "import mixupexp, mixupexp.train, hydra; from hydra import compose, initialize_config_module\n"
        "assert mixupexp.__file__.startswith(%r), mixupexp.__file__\n"
        "with initialize_config_module(config_module='mixupexp.conf', version_base='1.3'):\n"
        "    cfg = compose(config_name='config', overrides=['augment=mixup', 'experiment=seed_study', 'debug=smoke'])\n"
        "    sweeper = compose(config_name='config', overrides=['hydra/sweeper=sequential'],\n"
        "                      return_hydra_config=True).hydra.sweeper\n"
        "from hydra.core.plugins import Plugins\n"
        "from hydra.plugins.sweeper import Sweeper\n"
        "found = [c for c in Plugins.instance().discover(Sweeper) if c.__name__ == 'SequentialSweeper']\n"
        "assert len(found) == 1 and found[0].__module__ == sweeper._target_.rsplit('.', 1)[0]\n"
        "assert __import__(found[0].__module__, fromlist=['x']).__file__.startswith(%r)\n"
        "print(cfg.augment.name, cfg.augment.alpha)\n" % (str(site), str(site))
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env={"PYTHONPATH": str(site), "PATH": ""},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "mixup 0.2"


def test_run_directories_are_named_by_the_run_and_sweeps_by_the_microsecond():
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from mixupexp.records.identity import run_name

    with initialize_config_module(config_module="mixupexp.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=["augment=mixup", "seed=2"], return_hydra_config=True)
    assert cfg.hydra.run.dir == f"outputs/runs/{run_name(cfg)}" and run_name(cfg).startswith("mixup_seed2_")
    assert cfg.hydra.sweep.subdir == run_name(cfg)
    assert "%f" in OmegaConf.to_container(cfg.hydra.sweep, resolve=False)["dir"]


def test_the_plugin_namespace_is_named_as_a_package_for_editable_installs():
    """An editable install (PEP 660) lists only the packages it names in the hydra_plugins namespace's path; a
    plugin package named without its namespace imports, but Hydra's scan of the namespace does not list it."""
    import tomllib

    packages = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert {"hydra_plugins", "hydra_plugins.mixupexp_sequential_sweeper"} <= set(packages)


def test_every_subpackage_is_listed_for_the_wheel():
    """pyproject.toml names its packages one by one: a subpackage it leaves out (records/, when it was made) is
    missing from every non-editable install, though the editable one the tests use still finds it."""
    import tomllib

    packages = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "mixupexp").rglob("__init__.py")}
    plugins = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "hydra_plugins").glob("*/__init__.py")}
    assert on_disk | plugins <= packages

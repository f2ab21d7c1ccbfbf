"""Floor 0, the config: the schema every YAML file is merged into, the registry of every option, composition, presets,
help, suggestions and the Hydra internals the package uses."""

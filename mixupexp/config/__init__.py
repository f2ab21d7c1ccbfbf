"""Stage 0, the config: the schema every YAML file is merged into, the registry of every option, checks, composition, presets and help."""

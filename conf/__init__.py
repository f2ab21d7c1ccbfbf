# Importing the configs registers their schema (the structured configs) with Hydra's ConfigStore.
import mixupexp.config.schema  # noqa: F401

"""mixupexp: does mixup help this model on this data, by how much, and is it real?"""

__version__ = "0.1.0"

"""Floor 4, the models: the study's CNN and PreAct ResNet-18, each a normaliser, blocks and a head."""

"""Floor 2, the data: every source (CIFAR-10, SVHN, image folders, generated) as uint8 tensors in one ImageData."""

"""Model tooling: training the pretrained ResNet50 and benchmarking the training recipe."""

"""The registry of pretrained weights (`manifest.json`) and our own
checkpoints, installed as `lambda_keras.checkpoints` (see README.md here)."""

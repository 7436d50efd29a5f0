"""Image classification: transfer learning from a pretrained backbone (`train`, the `image_training` job
kind) and predictions with the result on the inference worker (`serve`)."""

"""Recognition and audio (seed 002): image classification, object detection, faces, transcription and
speech synthesis, answered by the inference worker."""

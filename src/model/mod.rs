//! Stage 3, the acoustic model (placeholder until the model-core work lands).

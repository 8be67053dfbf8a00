//! Stage 3, the acoustic model: features `[frames, dim]` -> deep bidirectional LSTM -> log-posteriors
//! `[frames / stack_frames, phones + blank]` (DESIGN.md, "Network" and "Model file").
//!
//! - [`NetworkConfig`] describes the network, [`InitOptions`] how a new one is drawn ([`init_weights`]);
//! - [`Blstm`] is the network: `forward` (log-probs) and `forward_train` (logits, dropout) on padded
//!   candle batches `[batch, frames, dim]` + lengths, and `log_probs` on one ndarray utterance;
//! - [`ModelFile`] is a `.safetensors` file whose metadata ([`ModelConfig`]) says how to feed it; it is
//!   checked on load;
//! - [`Model`] bundles features, network and phones for inference from a waveform;
//! - [`FrameHead`] labels each frame with its phone from the last hidden layer, for boundaries.
//!
//! The LSTM runs through a fused CPU kernel (`fused.rs`, its inner loops in `kernels.rs`); `lstm.rs`
//! builds the same layer from plain candle ops, the reference the kernel is checked against.
//!
//! ```no_run
//! # fn main() -> phonrec::Result<()> {
//! let model = phonrec::model::Model::load("models/timit.safetensors".as_ref())?;
//! let samples = vec![0.0f32; 16_000]; // one second at model.sample_rate_hz(), int16 scale
//! let log_probs = model.log_probs_for_wave(&samples)?; // [100, model.phones().len()]
//! # Ok(()) }
//! ```

mod bf16;
mod config;
mod file;
mod frame_head;
mod fused;
mod inference;
mod init;
mod int8;
mod kernels;
mod lstm;
mod names;
mod network;
mod projection_u8;
mod resize;
mod windows;

/// Deterministic test inputs for the kernels' tests.
#[cfg(test)]
mod test_values {
    /// The next value in [−1, 1) of a 64-bit LCG (Knuth's MMIX constants) from `seed`.
    pub(super) fn lcg(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

pub use bf16::{amx_native, bf16_fast, bf16_native, bf16_rate_ratio, Precision};
pub use config::{InitOptions, NetworkConfig, WeightInit};
pub use file::{ModelConfig, ModelFile, TrainingSummary, WeightStorage, FORMAT_VERSION};
pub use frame_head::{frame_classes, FitOptions, FrameExamples, FrameHead};
pub use inference::Model;
pub use init::init_weights;
pub use int8::int8_kernel_name;
pub(crate) use kernels::{multiversion, with_values};
pub use kernels::{simd_level, SimdLevel, KERNEL_ENV};
pub use projection_u8::{u8_rate_ratio, Int8Projections};

/// The fused LSTM's inner loops, for `benches/kernels.rs` only: not part of the API.
#[doc(hidden)]
pub mod kernel_internals {
    pub use super::int8::{matmul_recurrent_i8, PackedI8};
    pub use super::kernels::{
        gemm_f32, matmul_packed, matmul_packed_in_order, matmul_packed_rows, PackedMatrix,
    };
    pub use super::projection_u8::{matmul_rows as projection_u8_rows, PackedU8};
}
pub(crate) use names::lstm_layer_prefix;
pub use names::{expected_tensors, TensorSpec};
pub use network::{features_to_tensor, Blstm, DropoutState, LstmKernel};
pub use resize::widen;

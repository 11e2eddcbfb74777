//! Moves tensors from a [`WeightFile`] onto a device, dequantizing int8 there.

use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{Error, Result};
use crate::weights::{HostTensor, WeightFile};

pub struct Loader<'f, 'a> {
    pub file: &'f WeightFile<'a>,
    pub device: Device,
    /// The config file the expected shapes come from, named in shape errors.
    pub config_origin: String,
}

impl Loader<'_, '_> {
    /// Tensor `name` of exactly `shape`, as f32 on the device.
    pub fn tensor<const D: usize>(&self, name: &str, shape: [usize; D]) -> Result<Tensor<D>> {
        let host = self.host_of_shape(name, &shape)?;
        Ok(self.upload(host, shape))
    }

    /// Host tensor `name`, which must have exactly `shape`.
    fn host_of_shape(&self, name: &str, shape: &[usize]) -> Result<HostTensor> {
        let host = self.file.get(name)?;
        if host.shape() != shape {
            return Err(Error::tensor(
                self.file.origin(),
                name,
                format!("shape {:?} does not match {:?}, implied by {}", host.shape(), shape, self.config_origin),
            ));
        }
        Ok(host)
    }

    /// A PyTorch `[rows, cols]` matrix returned transposed, `[cols, rows]`,
    /// which is the layout `x.matmul(w)` wants.
    pub fn matrix_transposed(&self, name: &str, rows: usize, cols: usize) -> Result<Tensor<2>> {
        self.transposed(name, &[rows, cols], rows, cols)
    }

    /// Tensor `name` of exactly `shape`, read as a `[rows, cols]` matrix and
    /// returned transposed. The transpose happens on the host, so the device
    /// holds a contiguous matrix: the same layout a trained (updated) weight
    /// has, which keeps a resumed training run on the same arithmetic path.
    pub fn transposed(&self, name: &str, shape: &[usize], rows: usize, cols: usize) -> Result<Tensor<2>> {
        let host = self.host_of_shape(name, shape)?;
        let transpose = |values: &[f32]| -> Vec<f32> {
            let mut out = vec![0.0f32; values.len()];
            for r in 0..rows {
                for c in 0..cols {
                    out[c * rows + r] = values[r * cols + c];
                }
            }
            out
        };
        Ok(match host {
            HostTensor::F32 { values, .. } => {
                Tensor::from_data(TensorData::new(transpose(&values), [cols, rows]), &self.device)
            }
            HostTensor::Int8Rows { values, scales, .. } => {
                // Row scales of the stored matrix become column scales of its transpose.
                let q: Vec<f32> = values.into_iter().map(f32::from).collect();
                let q = Tensor::<2>::from_data(TensorData::new(transpose(&q), [cols, rows]), &self.device);
                let s = Tensor::<2>::from_data(TensorData::new(scales, [1, rows]), &self.device);
                q * s
            }
        })
    }

    /// A scalar parameter stored as shape `[]` (transformers) or `[1]`.
    pub fn scalar(&self, name: &str) -> Result<Tensor<1>> {
        let host = self.file.get(name)?;
        if host.shape().iter().product::<usize>() != 1 {
            return Err(Error::tensor(self.file.origin(), name, format!("expected a scalar, found shape {:?}", host.shape())));
        }
        Ok(self.upload(host, [1]))
    }

    fn upload<const D: usize>(&self, host: HostTensor, shape: [usize; D]) -> Tensor<D> {
        match host {
            HostTensor::F32 { values, .. } => Tensor::from_data(TensorData::new(values, shape), &self.device),
            HostTensor::Int8Rows { values, scales, .. } => {
                let rows = scales.len();
                let row_len = values.len() / rows.max(1);
                // i8 -> f32 on the host is exact; the per-row scaling runs on the
                // device. The device holds f32 weights: int8 saves download and
                // storage, not GPU memory.
                let q: Vec<f32> = values.into_iter().map(f32::from).collect();
                let q = Tensor::<2>::from_data(TensorData::new(q, [rows, row_len]), &self.device);
                let s = Tensor::<2>::from_data(TensorData::new(scales, [rows, 1]), &self.device);
                (q * s).reshape(shape)
            }
        }
    }
}

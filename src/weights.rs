//! `model.safetensors` -> named, shape-checked f32 tensors.
//!
//! Model bytes are untrusted input: the safetensors crate checks that the
//! header parses and the offsets add up to the file's length; here every
//! tensor the model needs is checked for name, dtype, shape and finiteness
//! before it is converted to f32.

use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

use crate::error::{io_error, Error, Result};

/// A memory-mapped safetensors file.
pub(crate) struct SafetensorsFile {
    path: PathBuf,
    mmap: memmap2::Mmap,
}

impl SafetensorsFile {
    pub(crate) fn open(path: &Path) -> Result<SafetensorsFile> {
        let file = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
        // SAFETY: the map is read-only and lives as long as this value. Another
        // process truncating the file while we read it is outside what any
        // loader can defend against (the same holds for safetensors in Python).
        let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| io_error(path, e))?;
        Ok(SafetensorsFile {
            path: path.to_path_buf(),
            mmap,
        })
    }

    pub(crate) fn tensors(&self) -> Result<Weights<'_>> {
        let st = SafeTensors::deserialize(&self.mmap).map_err(|e| Error::Safetensors {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        Ok(Weights { st, file: self })
    }

    /// Lets the kernel drop the mapped pages of `bytes` (a slice of this
    /// map) from our resident set: once a tensor is converted to f32 its file
    /// bytes are dead weight, and without this the load's peak RSS is the
    /// model twice over.
    #[cfg(unix)]
    fn release(&self, bytes: &[u8]) {
        let offset = bytes.as_ptr() as usize - self.mmap.as_ptr() as usize;
        // SAFETY: a read-only, file-backed map: after MADV_DONTNEED the pages
        // refault from the file with the same contents, so no reader of the
        // map can observe a change.
        let _ = unsafe {
            self.mmap.unchecked_advise_range(
                memmap2::UncheckedAdvice::DontNeed,
                offset,
                bytes.len(),
            )
        };
    }

    /// Elsewhere the pages stay until the map is dropped after loading.
    #[cfg(not(unix))]
    fn release(&self, _bytes: &[u8]) {}
}

/// The tensors of one file, looked up by Hugging Face name.
pub(crate) struct Weights<'a> {
    st: SafeTensors<'a>,
    file: &'a SafetensorsFile,
}

impl Weights<'_> {
    /// Whether the file has a tensor of exactly this name.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.st.tensor(name).is_ok()
    }

    /// The tensor `name`, looked up as `{prefix}{name}` first and then as
    /// `name`, checked against `shape` and converted to f32.
    pub(crate) fn get(&self, prefix: &str, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let prefixed = format!("{prefix}{name}");
        let (stored, view) = match self.st.tensor(&prefixed) {
            Ok(view) => (prefixed, view),
            Err(_) => match self.st.tensor(name) {
                Ok(view) => (name.to_string(), view),
                Err(_) => {
                    return Err(Error::MissingTensor {
                        name: name.to_string(),
                        hint: String::new(),
                    })
                }
            },
        };
        if view.shape() != shape {
            return Err(Error::TensorShape {
                name: stored,
                expected: shape.to_vec(),
                found: view.shape().to_vec(),
            });
        }
        let bytes = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            other => {
                return Err(Error::TensorDtype {
                    name: stored,
                    dtype: format!("{other:?}"),
                })
            }
        };
        self.file.release(bytes);
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFiniteWeight {
                name: stored,
                index,
            });
        }
        Ok(values)
    }
}

//! `model.safetensors` -> named, shape-checked f32 tensors.
//!
//! Model bytes are untrusted input: the safetensors crate checks that the
//! header parses and the offsets add up to the file's length; here every
//! tensor the model needs is checked for name, dtype, shape and finiteness
//! before it is converted to f32.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use safetensors::{Dtype, SafeTensors};

use crate::error::{io_error, Error, Result};

/// A memory-mapped safetensors file.
pub(crate) struct SafetensorsFile {
    path: PathBuf,
    mmap: Arc<memmap2::Mmap>,
    /// The open file, for reading a [`Table`]'s rows without the map.
    file: Option<Arc<std::fs::File>>,
    /// Whether the map is backed by the file, so that released pages refault
    /// with the same contents (an anonymous map's would come back as zeros).
    file_backed: bool,
}

impl SafetensorsFile {
    pub(crate) fn open(path: &Path) -> Result<SafetensorsFile> {
        let file = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
        // SAFETY: the map is read-only and lives as long as this value, or as
        // long as the model when its word embeddings are read in place
        // (`Table::Mapped`). Another process truncating or rewriting the file
        // meanwhile is outside what any loader can defend against (the same
        // holds for safetensors in Python and for candle); replacing it by a
        // rename, as the hub cache and most tools do, leaves our map intact.
        let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| io_error(path, e))?;
        Ok(SafetensorsFile {
            path: path.to_path_buf(),
            mmap: Arc::new(mmap),
            file: Some(Arc::new(file)),
            file_backed: true,
        })
    }

    /// The same from bytes in memory (copied into an anonymous map, so that
    /// the loading path is the file's), for the fuzz targets; `path` only
    /// names it in errors.
    pub(crate) fn from_bytes(path: &Path, bytes: &[u8]) -> Result<SafetensorsFile> {
        // An anonymous map cannot be empty; a one-byte map of a zero is as
        // far from a safetensors header as no bytes at all.
        let mut map =
            memmap2::MmapMut::map_anon(bytes.len().max(1)).map_err(|e| io_error(path, e))?;
        map[..bytes.len()].copy_from_slice(bytes);
        let map = map.make_read_only().map_err(|e| io_error(path, e))?;
        Ok(SafetensorsFile {
            path: path.to_path_buf(),
            mmap: Arc::new(map),
            file: None,
            file_backed: false,
        })
    }

    pub(crate) fn tensors(&self) -> Result<Weights<'_>> {
        let st = SafeTensors::deserialize(&self.mmap).map_err(|e| Error::Safetensors {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        Ok(Weights {
            st,
            file: self,
            buffers: Default::default(),
        })
    }

    /// Lets the kernel drop the mapped pages of `bytes` (a slice of this
    /// map) from our resident set: once a tensor is converted to f32 its file
    /// bytes are dead weight, and without this the load's peak RSS is the
    /// model twice over.
    #[cfg(unix)]
    fn release(&self, bytes: &[u8]) {
        if !self.file_backed {
            return;
        }
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

    /// Reads `bytes` (a slice of this map holding f32s in this machine's byte
    /// order) from the file into `out`, without touching the map: a fault on
    /// the map brings in the kernel's fault-around, or a whole large folio,
    /// beyond the tensor, and those pages stay resident until released.
    /// `false` where there is no file or the read fails: then read the map.
    fn read_into(&self, bytes: &[u8], out: &mut [f32]) -> bool {
        #[cfg(unix)]
        if let (Some(file), true) = (&self.file, cfg!(target_endian = "little")) {
            debug_assert_eq!(bytes.len(), out.len() * 4);
            let at = (bytes.as_ptr() as usize - self.mmap.as_ptr() as usize) as u64;
            return pread_f32(file, at, out);
        }
        let _ = (bytes, out);
        false
    }

    /// [`SafetensorsFile::release`] for the whole map, once every tensor is
    /// loaded. Each tensor's pages were released as it was converted, but
    /// the page cache can hold a file in large folios, and a fault maps its
    /// whole folio: reading the start of one tensor (or of the word-embedding
    /// table's next part) maps again the end of the one before. That left
    /// 7 MB of all-MiniLM-L6-v2's table resident for the model's lifetime.
    pub(crate) fn release_all(&self) {
        self.release(&self.mmap);
    }
}

/// The tensors of one file, looked up by Hugging Face name.
pub(crate) struct Weights<'a> {
    st: SafeTensors<'a>,
    file: &'a SafetensorsFile,
    /// Buffers that f32 tensors are read into, reused from one tensor to the
    /// next (a fresh one per tensor costs its page faults each time: 20 ms
    /// of all-MiniLM-L6-v2's load); freed with the `Weights` after loading.
    buffers: std::sync::Mutex<Vec<Vec<f32>>>,
}

impl<'a> Weights<'a> {
    /// Whether the file has a tensor of exactly this name.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.st.tensor(name).is_ok()
    }

    /// The tensor `name`, looked up as `{prefix}{name}` first and then as
    /// `name`, checked against `shape` and converted to f32.
    pub(crate) fn get(&self, prefix: &str, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        self.with(prefix, name, shape, <[f32]>::to_vec)
    }

    /// Runs `f` on the tensor as [`Weights::get`] finds and checks it. An f32
    /// tensor is read from the file into a buffer that lives as long as `f`
    /// (see [`SafetensorsFile::read_into`]); other types are converted from
    /// the map, whose pages are then released.
    pub(crate) fn with<T>(
        &self,
        prefix: &str,
        name: &str,
        shape: &[usize],
        f: impl FnOnce(&[f32]) -> T,
    ) -> Result<T> {
        let (stored, view) = self.find(prefix, name, shape)?;
        let bytes = view.data();
        if view.dtype() == Dtype::F32 {
            // Read from the file: the map's pages would outlive the tensor.
            let len = bytes.len() / 4;
            let reused = self.buffers.lock().ok().and_then(|mut b| b.pop());
            let mut buffer = reused.unwrap_or_default();
            if buffer.len() < len {
                buffer.resize(len, 0.0);
            }
            if self.file.read_into(bytes, &mut buffer[..len]) {
                let values = &buffer[..len];
                let result = check_finite(&stored, values).map(|()| f(values));
                if let Ok(mut buffers) = self.buffers.lock() {
                    buffers.push(buffer);
                }
                return result;
            }
        }
        let result = f(&checked_values(&stored, view.dtype(), bytes)?);
        self.file.release(bytes);
        Ok(result)
    }

    /// The tensor as a [`Table`] kept for the model's lifetime: the word
    /// embeddings, of which a batch reads a few rows. Left in the file when
    /// stored as f32: checked a MiB at a time, each part read from the file
    /// into one buffer (or, should the read fail, from the map, its pages
    /// released once checked), so that loading never holds the whole table;
    /// its rows are then read from the file as needed ([`Table::read_row`]).
    /// Converted otherwise.
    pub(crate) fn table(&self, prefix: &str, name: &str, shape: &[usize]) -> Result<Table> {
        let (stored, view) = self.find(prefix, name, shape)?;
        let bytes = view.data();
        let table = match in_place(view.dtype(), bytes) {
            Some(values) => {
                const PART: usize = 1 << 18;
                let mut buffer = vec![0.0f32; PART.min(values.len())];
                for (i, part) in values.chunks(PART).enumerate() {
                    let part_bytes = &bytes[i * PART * 4..(i * PART + part.len()) * 4];
                    let read = &mut buffer[..part.len()];
                    if self.file.read_into(part_bytes, read) {
                        check_finite_from(&stored, read, i * PART)?;
                    } else {
                        check_finite_from(&stored, part, i * PART)?;
                        self.file.release(part_bytes);
                    }
                }
                Table::Mapped {
                    map: Arc::clone(&self.file.mmap),
                    file: self.file.file.clone(),
                    offset: bytes.as_ptr() as usize - self.file.mmap.as_ptr() as usize,
                    len: values.len(),
                }
            }
            None => {
                let values = convert(&stored, view.dtype(), bytes)?;
                check_finite(&stored, &values)?;
                self.file.release(bytes);
                Table::Owned(values)
            }
        };
        Ok(table)
    }

    /// Looks the tensor up (prefixed name first) and checks its shape.
    fn find(
        &self,
        prefix: &str,
        name: &str,
        shape: &[usize],
    ) -> Result<(String, safetensors::tensor::TensorView<'a>)> {
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
        Ok((stored, view))
    }
}

/// The tensor's values, read in place when [`in_place`] allows and converted
/// otherwise, checked finite.
fn checked_values<'b>(stored: &str, dtype: Dtype, bytes: &'b [u8]) -> Result<Cow<'b, [f32]>> {
    let values = match in_place(dtype, bytes) {
        Some(values) => Cow::Borrowed(values),
        None => Cow::Owned(convert(stored, dtype, bytes)?),
    };
    check_finite(stored, &values)?;
    Ok(values)
}

/// The f32s of `bytes` without a copy, when they are stored as f32 in this
/// machine's byte order at a 4-byte-aligned address.
fn in_place(dtype: Dtype, bytes: &[u8]) -> Option<&[f32]> {
    if dtype != Dtype::F32 || cfg!(target_endian = "big") {
        return None;
    }
    // SAFETY: every bit pattern is a valid f32 and `align_to` only hands out
    // aligned, in-bounds elements; a misaligned start shows as a non-empty
    // prefix, and then we copy instead.
    match unsafe { bytes.align_to::<f32>() } {
        ([], values, []) => Some(values),
        _ => None,
    }
}

/// Converts stored little-endian f32, f16 or bf16 values to f32.
fn convert(stored: &str, dtype: Dtype, bytes: &[u8]) -> Result<Vec<f32>> {
    Ok(match dtype {
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
                name: stored.to_string(),
                dtype: format!("{other:?}"),
            })
        }
    })
}

/// NaN or infinite weights would make every score NaN, silently: refuse them.
fn check_finite(stored: &str, values: &[f32]) -> Result<()> {
    check_finite_from(stored, values, 0)
}

/// [`check_finite`] for `values` starting at index `first` of the tensor.
fn check_finite_from(stored: &str, values: &[f32], first: usize) -> Result<()> {
    // A branch-free scan per chunk (it vectorises; an early-exit search
    // does not, and this pass over every weight is on the cold-start path),
    // then the exact index only for a chunk that has one.
    const CHUNK: usize = 4096;
    let first_bad = values.chunks(CHUNK).enumerate().find_map(|(c, chunk)| {
        let bad = chunk.iter().fold(false, |bad, v| bad | !v.is_finite());
        bad.then(|| c * CHUNK + chunk.iter().position(|v| !v.is_finite()).unwrap_or(0))
    });
    match first_bad {
        Some(index) => Err(Error::NonFiniteWeight {
            name: stored.to_string(),
            index: first + index,
        }),
        None => Ok(()),
    }
}

/// A tensor kept for the model's lifetime: rows read from the file, or
/// converted to f32 when the file stores another type.
pub(crate) enum Table {
    /// `len` f32s at byte `offset` of `map` (4-byte aligned, checked finite),
    /// which is a map of `file` when there is one.
    Mapped {
        map: Arc<memmap2::Mmap>,
        file: Option<Arc<std::fs::File>>,
        offset: usize,
        len: usize,
    },
    /// Converted values.
    Owned(Vec<f32>),
}

/// Reads `out.len()` f32s, stored in this machine's byte order at byte `at`
/// of `file`, into `out` (`pread`: the file's offset is left alone). `false`
/// if the read fails or comes up short.
#[cfg(unix)]
fn pread_f32(file: &std::fs::File, at: u64, out: &mut [f32]) -> bool {
    use std::os::unix::fs::FileExt;
    // SAFETY: the bytes of `out`, which any bytes may fill (every bit pattern
    // is an f32).
    let bytes =
        unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<u8>(), out.len() * 4) };
    file.read_exact_at(bytes, at).is_ok()
}

impl Table {
    /// Copies row `row` (of `out.len()` values) into `out`.
    ///
    /// A mapped table's rows are read from the file (`pread`) rather than
    /// through the map: touching the map brings in the kernel's fault-around
    /// of 64 KiB for each row, so 20 reranking pairs kept ~13 MB of the
    /// table resident and a large corpus all 45 MB of it (all-MiniLM-L6-v2),
    /// where a read costs ~1 µs a token and no memory. Should the read fail,
    /// the row comes from the map, as it always did.
    ///
    /// # Panics
    /// If the row is outside the table.
    pub(crate) fn read_row(&self, row: usize, out: &mut [f32]) {
        let width = out.len();
        match self {
            Table::Mapped {
                map,
                file,
                offset,
                len,
            } => {
                assert!((row + 1) * width <= *len, "table row {row} out of range");
                #[cfg(unix)]
                if let Some(file) = file {
                    if pread_f32(file, (offset + row * width * 4) as u64, out) {
                        return;
                    }
                }
                #[cfg(not(unix))]
                let _ = file;
                // SAFETY: `Weights::table` built this from an in-bounds,
                // aligned f32 run of the map, which the `Arc` keeps alive and
                // read-only; the row is inside it (asserted).
                let values = unsafe {
                    std::slice::from_raw_parts(map.as_ptr().add(*offset).cast::<f32>(), *len)
                };
                out.copy_from_slice(&values[row * width..(row + 1) * width]);
            }
            Table::Owned(values) => out.copy_from_slice(&values[row * width..(row + 1) * width]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A safetensors file of one f32 tensor `t` of shape `[rows, width]`.
    fn one_tensor(values: &[f32], rows: usize, width: usize) -> Vec<u8> {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let view = safetensors::tensor::TensorView::new(Dtype::F32, vec![rows, width], &bytes)
            .expect("a valid view");
        safetensors::serialize([("t", view)], None).expect("serializes")
    }

    #[test]
    fn a_table_checked_in_parts_names_the_global_index() {
        // Past the first MiB-sized part, so the part's offset must be added.
        let (rows, width) = (1000, 300);
        let mut values: Vec<f32> = (0..rows * width).map(|i| i as f32).collect();
        values[270_001] = f32::NAN;
        let bytes = one_tensor(&values, rows, width);
        let file = SafetensorsFile::from_bytes(Path::new("t.safetensors"), &bytes).unwrap();
        let e = file.tensors().unwrap().table("", "t", &[rows, width]).err();
        assert!(
            matches!(e, Some(Error::NonFiniteWeight { index: 270_001, .. })),
            "{e:?}"
        );
    }

    #[test]
    fn table_rows_read_from_the_file_match_the_values() {
        let (rows, width) = (700, 384);
        let values: Vec<f32> = (0..rows * width).map(|i| (i as f32).sin()).collect();
        let path =
            std::env::temp_dir().join(format!("crossenc-table-{}.safetensors", std::process::id()));
        std::fs::write(&path, one_tensor(&values, rows, width)).unwrap();
        let file = SafetensorsFile::open(&path).unwrap();
        let table = file
            .tensors()
            .unwrap()
            .table("", "t", &[rows, width])
            .unwrap();
        assert!(matches!(&table, Table::Mapped { file: Some(_), .. }));
        let mut row = vec![0.0; width];
        for r in [0, 1, 350, rows - 1] {
            table.read_row(r, &mut row);
            assert_eq!(row, values[r * width..(r + 1) * width], "row {r}");
        }
        std::fs::remove_file(&path).unwrap();
    }

    /// A file-backed model is read with `pread`, not through its map: the
    /// values and a bad value's index are the map's, and once loaded none of
    /// the map is resident (on Linux, where `/proc/self/smaps` says so).
    #[test]
    fn tensors_read_from_the_file_leave_the_map_unresident() {
        let (rows, width) = (1000, 300);
        let mut values: Vec<f32> = (0..rows * width).map(|i| (i as f32).cos()).collect();
        let path =
            std::env::temp_dir().join(format!("crossenc-pread-{}.safetensors", std::process::id()));
        std::fs::write(&path, one_tensor(&values, rows, width)).unwrap();
        let file = SafetensorsFile::open(&path).unwrap();
        let w = file.tensors().unwrap();
        let read = w.with("", "t", &[rows, width], <[f32]>::to_vec).unwrap();
        assert!(read == values, "with() differs from the file's values");
        w.table("", "t", &[rows, width]).unwrap();
        file.release_all();
        #[cfg(target_os = "linux")]
        {
            let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
            let name = path.to_str().unwrap();
            let mapping = smaps
                .split_inclusive('\n')
                .skip_while(|line| !line.trim_end().ends_with(name))
                .skip(1)
                .take_while(|line| line.contains(':') && !line.contains('-'))
                .find(|line| line.starts_with("Rss:"))
                .expect("the map in /proc/self/smaps");
            assert_eq!(
                mapping.split_whitespace().nth(1),
                Some("0"),
                "pages of the map still resident: {mapping}"
            );
        }
        drop(w);
        drop(file);

        values[270_001] = f32::INFINITY;
        std::fs::write(&path, one_tensor(&values, rows, width)).unwrap();
        let file = SafetensorsFile::open(&path).unwrap();
        let w = file.tensors().unwrap();
        for e in [
            w.table("", "t", &[rows, width]).err(),
            w.with("", "t", &[rows, width], |_| ()).err(),
        ] {
            assert!(
                matches!(e, Some(Error::NonFiniteWeight { index: 270_001, .. })),
                "{e:?}"
            );
        }
        std::fs::remove_file(&path).unwrap();
    }
}

//! Hugging Face hub ids as model names: files are fetched into (and read
//! from) the same cache as Python's `huggingface_hub`.
//!
//! Environment, as in Python: `HF_HOME` (cache at `$HF_HOME/hub`),
//! `HF_HUB_CACHE` (the cache itself), `HF_ENDPOINT` (a mirror),
//! `HF_TOKEN` (else the token file in `HF_HOME`), `HF_HUB_OFFLINE=1` (the
//! cache only, no network).
//!
//! Every downloaded file is checked against the etag the hub sent (the
//! sha256 of an LFS file such as `model.safetensors`, git's blob sha1 for a
//! small one); a truncated or corrupt download is deleted and fetched once
//! more, never used.

use std::io::Read;
use std::path::{Path, PathBuf};

use hf_hub::api::sync::{ApiBuilder, ApiError};
use hf_hub::{Cache, Repo, RepoType};

use crate::error::{Error, Result};

/// The reranker `crossenc rerank` uses when no model is named.
pub const DEFAULT_RERANKER: &str = "cross-encoder/ms-marco-MiniLM-L6-v2";

/// Files a model folder needs.
const REQUIRED: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];

/// Files used when present (tokenizer limits, sentence-transformers modules).
const OPTIONAL: [&str; 5] = [
    "tokenizer_config.json",
    "special_tokens_map.json",
    "modules.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
];

/// Where to look a model up.
#[derive(Clone, Debug, Default)]
pub struct HubOptions {
    /// Branch, tag or commit (default `main`).
    pub revision: Option<String>,
    /// Draw a progress bar for downloads (on stderr).
    pub progress: bool,
}

/// `model` as a local folder: the folder itself if it exists, else the
/// snapshot folder of hub repo `model` in the cache, downloading what is
/// missing (unless `HF_HUB_OFFLINE=1`).
pub fn resolve(model: &str, options: &HubOptions) -> Result<PathBuf> {
    let local = Path::new(model);
    if local.is_dir() {
        return Ok(local.to_path_buf());
    }
    if local.is_file() || looks_like_path(model) || !looks_like_repo_id(model) {
        // A path is never sent to the hub: say what is wrong with it here.
        crate::load::check_folder(local)?;
        return Ok(local.to_path_buf());
    }
    let cache = cache_from_env();
    let revision = options
        .revision
        .clone()
        .unwrap_or_else(|| "main".to_string());
    let repo = Repo::with_revision(model.to_string(), RepoType::Model, revision.clone());
    let offline = matches!(
        std::env::var("HF_HUB_OFFLINE").as_deref(),
        Ok("1") | Ok("true") | Ok("TRUE")
    );
    let mut snapshot = None;
    for (file, required) in REQUIRED
        .iter()
        .map(|f| (*f, true))
        .chain(OPTIONAL.iter().map(|f| (*f, false)))
    {
        let path = if offline {
            cache.repo(repo.clone()).get(file)
        } else {
            fetch(&cache, &repo, file, options, model)?
        };
        match path {
            Some(path) => {
                if file == "config.json" {
                    snapshot = path.parent().map(Path::to_path_buf);
                }
            }
            None if !required => {}
            None if offline => {
                return Err(Error::Hub {
                    model: model.to_string(),
                    message: format!(
                        "HF_HUB_OFFLINE is set and the cache ({}) has no {file} for revision {revision}",
                        cache.path().display()
                    ),
                    hint: "fetch it first with `crossenc download` (or Python's huggingface_hub) while online, or pass a local folder".into(),
                })
            }
            None => {
                return Err(Error::Hub {
                    model: model.to_string(),
                    message: format!("the repository has no {file} at revision {revision}"),
                    hint: "is this a cross-encoder or sentence-transformers model with safetensors weights?".into(),
                })
            }
        }
    }
    snapshot.ok_or_else(|| Error::Hub {
        model: model.to_string(),
        message: "no snapshot folder".into(),
        hint: String::new(),
    })
}

/// `org/name` or `name`: what the hub accepts as a model id.
/// Whether `s` is meant as a path: it starts with `.`, `/` or `~`, or its
/// parent folder exists (`models/my-reranker` where `models/` is here).
fn looks_like_path(s: &str) -> bool {
    s.starts_with(['.', '/', '~'])
        || Path::new(s)
            .parent()
            .is_some_and(|p| !p.as_os_str().is_empty() && p.is_dir())
}

fn looks_like_repo_id(s: &str) -> bool {
    let parts: Vec<&str> = s.split('/').collect();
    (1..=2).contains(&parts.len())
        && parts.iter().all(|p| {
            !p.is_empty()
                && !p.starts_with('.')
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
}

/// The cache `huggingface_hub` uses: `HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.
pub fn cache_from_env() -> Cache {
    match std::env::var_os("HF_HUB_CACHE") {
        Some(dir) if !dir.is_empty() => Cache::new(PathBuf::from(dir)),
        _ => Cache::from_env(),
    }
}

/// One file: from the cache if there, else downloaded and checked.
/// `Ok(None)` when the hub has no such file (404).
fn fetch(
    cache: &Cache,
    repo: &Repo,
    file: &str,
    options: &HubOptions,
    model: &str,
) -> Result<Option<PathBuf>> {
    if let Some(path) = cache.repo(repo.clone()).get(file) {
        return Ok(Some(path));
    }
    let token = std::env::var("HF_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .or_else(|| cache.token());
    let api = ApiBuilder::from_cache(cache.clone())
        .with_endpoint(endpoint())
        .with_token(token)
        .with_progress(options.progress)
        .build()
        .map_err(|e| hub_error(model, file, e))?;
    // Two attempts: a broken connection or a corrupt body gets one more try.
    for attempt in 0..2 {
        let last = attempt == 1;
        let path = match api.repo(repo.clone()).download(file) {
            Ok(path) => path,
            Err(e) if status(&e) == Some(404) => return Ok(None),
            Err(e) if last || matches!(status(&e), Some(401) | Some(403)) => {
                return Err(hub_error(model, file, e))
            }
            Err(_) => continue,
        };
        match verify(&path) {
            Ok(()) => return Ok(Some(path)),
            Err(why) => {
                // Never keep a bad file: remove the blob and its snapshot link.
                if let Ok(blob) = std::fs::canonicalize(&path) {
                    let _ = std::fs::remove_file(blob);
                }
                let _ = std::fs::remove_file(&path);
                if last {
                    return Err(Error::Hub {
                        model: model.to_string(),
                        message: format!("{file} arrived corrupt twice ({why})"),
                        hint: "the connection or the mirror is damaging downloads; try again later"
                            .into(),
                    });
                }
            }
        }
    }
    unreachable!("the loop returns on its second attempt")
}

fn endpoint() -> String {
    std::env::var("HF_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| "https://huggingface.co".to_string())
        .trim_end_matches('/')
        .to_string()
}

/// Checks a downloaded file against its blob name, which is the hub's etag:
/// 64 hex digits are a sha256 of the content (LFS), 40 are git's blob sha1.
fn verify(path: &Path) -> std::result::Result<(), String> {
    let blob = std::fs::canonicalize(path).map_err(|e| e.to_string())?;
    let etag = blob
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut file = std::fs::File::open(&blob).map_err(|e| e.to_string())?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let mut buf = vec![0u8; 1 << 20];
    let digest = match etag.len() {
        64 => {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            loop {
                let n = file.read(&mut buf).map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            hex(&h.finalize())
        }
        40 => {
            use sha1::Digest;
            let mut h = sha1::Sha1::new();
            h.update(format!("blob {len}\0").as_bytes());
            loop {
                let n = file.read(&mut buf).map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            hex(&h.finalize())
        }
        _ => return Ok(()), // an etag we cannot check (some mirrors)
    };
    if digest == etag {
        Ok(())
    } else {
        Err(format!("{len} bytes hash to {digest}, the hub said {etag}"))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The HTTP status of a failed request, if the server answered one.
fn status(e: &ApiError) -> Option<u16> {
    match e {
        ApiError::RequestError(e) => match e.as_ref() {
            ureq::Error::Status(code, _) => Some(*code),
            ureq::Error::Transport(_) => None,
        },
        ApiError::TooManyRetries(e) => status(e),
        _ => None,
    }
}

fn hub_error(model: &str, file: &str, e: ApiError) -> Error {
    let (message, hint) = match status(&e) {
        Some(401) | Some(403) => (
            format!("the hub refused access to {file} ({e})"),
            "the repository is private or gated: set HF_TOKEN to a token that can read it".to_string(),
        ),
        Some(code) => (format!("the hub answered {code} for {file}"), String::new()),
        None => (
            format!("cannot download {file} from {}: {e}", endpoint()),
            "without network, pass a local model folder to --model, or set HF_HUB_OFFLINE=1 to use a populated cache (HF_HOME / HF_HUB_CACHE)".to_string(),
        ),
    };
    Error::Hub {
        model: model.to_string(),
        message,
        hint,
    }
}

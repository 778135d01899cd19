//! E2_BackupSiteContent: fan-out/fan-in.

use crate::hash32;
use durablewasm::{try_join_all, ActivityContext, Error, OrchestrationContext, Result, Task};

/// E2_BackupSiteContent: lists the files under the input directory, copies
/// them all in parallel and returns the total number of bytes copied.
pub async fn backup_site_content(ctx: OrchestrationContext, root: Option<String>) -> Result<i64> {
    let root = root.unwrap_or_default();
    if root.is_empty() {
        return Err(Error::msg("a directory path is required as input"));
    }
    let files: Vec<String> = ctx.call_activity("E2_GetFileList", &root).await?;
    let tasks: Vec<Task<i64>> = files.iter().map(|f| ctx.call_activity("E2_CopyFileToBlob", f)).collect();
    let sizes = try_join_all(tasks).await?;
    Ok(sizes.iter().sum())
}

/// The synthetic file list of `dir`: 3 to 7 files "<dir>/file-NN.dat".
pub fn file_list(dir: &str) -> Vec<String> {
    let n = 3 + (hash32(dir) % 5) as usize;
    (0..n).map(|i| format!("{}/file-{:02}.dat", dir, i)).collect()
}

/// The synthetic size of `path`: 1000 to 100999 bytes.
pub fn file_size(path: &str) -> i64 {
    1000 + (hash32(path) % 100_000) as i64
}

/// Activity E2_GetFileList.
pub async fn get_file_list(ctx: ActivityContext, dir: String) -> Result<Vec<String>> {
    ctx.log_info(&format!("listing files in {}", dir));
    Ok(file_list(&dir))
}

/// Activity E2_CopyFileToBlob.
pub async fn copy_file_to_blob(_: ActivityContext, path: String) -> Result<i64> {
    Ok(file_size(&path))
}

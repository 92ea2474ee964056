"""Getting the paper-scale files: the manifest, resumable and verified downloads, Google Drive confirm pages, local
mirrors, and unpacking."""

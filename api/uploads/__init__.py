"""Image uploads: content-addressed storage, content sniffing, streaming size limits."""

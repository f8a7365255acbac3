from pipelines.sources.nih_cxr14.source import SOURCE

__all__ = ["SOURCE"]

from pipelines.sources.object_cxr.source import SOURCE

__all__ = ["SOURCE"]

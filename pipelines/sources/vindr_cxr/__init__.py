from pipelines.sources.vindr_cxr.source import SOURCE

__all__ = ["SOURCE"]

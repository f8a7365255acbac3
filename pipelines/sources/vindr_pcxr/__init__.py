from pipelines.sources.vindr_pcxr.source import SOURCE

__all__ = ["SOURCE"]

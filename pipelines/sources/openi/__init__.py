from pipelines.sources.openi.source import SOURCE

__all__ = ["SOURCE"]

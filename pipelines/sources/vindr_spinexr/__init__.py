from pipelines.sources.vindr_spinexr.source import SOURCE

__all__ = ["SOURCE"]

from pipelines.sources.vindr_mammo.source import SOURCE

__all__ = ["SOURCE"]

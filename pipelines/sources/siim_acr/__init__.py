from pipelines.sources.siim_acr.source import SOURCE

__all__ = ["SOURCE"]

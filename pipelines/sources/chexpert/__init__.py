from pipelines.sources.chexpert.source import SOURCE

__all__ = ["SOURCE"]

from pipelines.sources.rsna_pneumonia.source import SOURCE

__all__ = ["SOURCE"]

"""mt: a small, fast, readable neural machine translation toolkit.

Data flow: corpus files -> ``data`` -> ``tokenizer`` -> ``batching`` -> ``models`` ->
``search`` -> detokenized text -> ``metrics``. ``train`` and ``translate`` are the two
pipelines over those pieces; ``cli.py`` at the repository root renders them.
"""

__version__ = "0.1.0"

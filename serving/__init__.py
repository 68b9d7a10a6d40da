"""The prediction API: the @champion model (and a shadow @challenger) behind BentoML."""

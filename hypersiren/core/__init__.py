"""The shared core: the SIREN, its one rendering path, derivatives by autograd, metrics and field losses."""

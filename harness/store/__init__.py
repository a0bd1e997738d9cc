"""The store: the record schema, run folders, the index, atomic files. Depends on nothing but errors."""

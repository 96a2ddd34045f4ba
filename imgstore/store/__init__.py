"""The store core: the writer, the read view, the chunk layouts and the store classes built on them."""

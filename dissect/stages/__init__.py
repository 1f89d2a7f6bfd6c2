"""Pipeline stages. Each stage is a function of its inputs and its own config section, writes its
artifact(s) atomically into the run directory, and is skipped when its manifest hashes match."""

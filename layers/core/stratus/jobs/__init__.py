"""The job pipeline's core: the one Job record, its transition table, the store every writer goes
through, and the specs by which each job kind plugs in (what it needs, what its result registers)."""

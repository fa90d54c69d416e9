"""One module per rule family; each rule a small class (see base.Check)."""

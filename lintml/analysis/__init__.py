"""What the checks ask about code: imports, models, contexts. No reporting here."""

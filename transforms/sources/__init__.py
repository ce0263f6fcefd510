"""Where entities come from: ReadFromPrism (live) and ReadFromSnapshot (replay)."""

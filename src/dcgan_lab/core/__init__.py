"""What every stage shares: the params schema and its reader, errors, paths, atomic files, the stage runner."""

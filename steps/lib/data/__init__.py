"""Reading a table, splitting it, and shaping its columns the same way for training and serving."""

"""IHE actors as application services; each public method is named after its RAD-n
transaction so a reader who knows the Technical Framework finds it by name."""

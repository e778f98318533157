"""Reading the prediction log into frames and turning windows into training datasets."""

"""What every layer leans on: errors, waiting on real state, doing work side by side, shipped
data."""

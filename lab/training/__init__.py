"""Break/fix training: exercises (folders of data), their checks, and trainees side by side."""

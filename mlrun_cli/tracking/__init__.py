"""Where runs are recorded: MLflow's file-store layout, read and written without MLflow."""

"""The HTTP API (Powertools resolver) shared by the Lambda function and the local server."""

"""The AWS adapters: DynamoDB metadata store, S3 blob store, boto3 clients. The only server-side
package that imports boto3."""

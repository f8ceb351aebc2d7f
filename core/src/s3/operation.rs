//! S3 API action names ("GetObject", "ListObjectsV2", ...) derived from the
//! method, the target and the sub-resource in the query, as S3 names them in
//! its API reference and access logs.

/// Sub-resources that select a different API action on a bucket or object,
/// with the noun used in the action name (`?acl` -> "Acl").
const SUB_RESOURCES: &[(&str, &str)] = &[
    ("accelerate", "BucketAccelerateConfiguration"),
    ("acl", "Acl"),
    ("analytics", "BucketAnalyticsConfiguration"),
    ("attributes", "ObjectAttributes"),
    ("cors", "BucketCors"),
    ("encryption", "BucketEncryption"),
    (
        "intelligent-tiering",
        "BucketIntelligentTieringConfiguration",
    ),
    ("inventory", "BucketInventoryConfiguration"),
    ("legal-hold", "ObjectLegalHold"),
    ("lifecycle", "BucketLifecycleConfiguration"),
    ("location", "BucketLocation"),
    ("logging", "BucketLogging"),
    ("metrics", "BucketMetricsConfiguration"),
    ("notification", "BucketNotificationConfiguration"),
    ("object-lock", "ObjectLockConfiguration"),
    ("ownershipControls", "BucketOwnershipControls"),
    ("policy", "BucketPolicy"),
    ("policyStatus", "BucketPolicyStatus"),
    ("publicAccessBlock", "PublicAccessBlock"),
    ("replication", "BucketReplication"),
    ("requestPayment", "BucketRequestPayment"),
    ("restore", "RestoreObject"),
    ("retention", "ObjectRetention"),
    ("tagging", "Tagging"),
    ("torrent", "ObjectTorrent"),
    ("versioning", "BucketVersioning"),
    ("website", "BucketWebsite"),
];

/// What `operation_name` needs to know about a request.
#[derive(Clone, Copy)]
pub struct OperationInput<'a> {
    pub method: &'a str,
    pub has_bucket: bool,
    pub has_key: bool,
    /// Returns whether the query has a parameter of this name.
    pub has_param: &'a dyn Fn(&str) -> bool,
    /// The value of `list-type`, when present.
    pub list_type: Option<&'a str>,
    pub has_copy_source: bool,
}

/// Returns the S3 API action name for a request, or "Unknown" for
/// combinations S3 does not define.
pub fn operation_name(input: &OperationInput<'_>) -> String {
    let OperationInput {
        method,
        has_bucket,
        has_key,
        has_param,
        ..
    } = *input;
    if !has_bucket {
        return if method == "GET" {
            "ListBuckets"
        } else {
            "Unknown"
        }
        .to_string();
    }
    if let Some(name) = multipart_operation(input) {
        return name.to_string();
    }
    if let Some((_, noun)) = SUB_RESOURCES.iter().find(|(param, _)| has_param(param)) {
        return sub_resource_operation(method, has_key, noun);
    }
    let name = match (method, has_key) {
        ("GET", true) => "GetObject",
        ("HEAD", true) => "HeadObject",
        ("PUT", true) if input.has_copy_source => "CopyObject",
        ("PUT", true) => "PutObject",
        ("DELETE", true) => "DeleteObject",
        ("POST", true) => "PostObject",
        ("GET", false) if has_param("versions") => "ListObjectVersions",
        ("GET", false) if input.list_type == Some("2") => "ListObjectsV2",
        ("GET", false) => "ListObjects",
        ("HEAD", false) => "HeadBucket",
        ("PUT", false) => "CreateBucket",
        ("DELETE", false) => "DeleteBucket",
        ("POST", false) if has_param("delete") => "DeleteObjects",
        _ => "Unknown",
    };
    name.to_string()
}

fn multipart_operation(input: &OperationInput<'_>) -> Option<&'static str> {
    let has_param = input.has_param;
    let name = match (input.method, input.has_key) {
        ("POST", true) if has_param("uploads") => "CreateMultipartUpload",
        ("POST", true) if has_param("uploadId") => "CompleteMultipartUpload",
        ("PUT", true) if has_param("uploadId") && input.has_copy_source => "UploadPartCopy",
        ("PUT", true) if has_param("uploadId") => "UploadPart",
        ("GET", true) if has_param("uploadId") => "ListParts",
        ("DELETE", true) if has_param("uploadId") => "AbortMultipartUpload",
        ("GET", false) if has_param("uploads") => "ListMultipartUploads",
        _ => return None,
    };
    Some(name)
}

fn sub_resource_operation(method: &str, has_key: bool, noun: &str) -> String {
    // Object-level nouns read "GetObjectAcl"; bucket-level ones already start
    // with "Bucket" or name the whole action.
    let noun = match (noun, has_key) {
        ("Acl", true) => "ObjectAcl",
        ("Acl", false) => "BucketAcl",
        ("Tagging", true) => "ObjectTagging",
        ("Tagging", false) => "BucketTagging",
        (noun, _) => noun,
    };
    if noun == "RestoreObject" {
        return noun.to_string();
    }
    let verb = match method {
        "GET" | "HEAD" => "Get",
        "PUT" | "POST" => "Put",
        "DELETE" => "Delete",
        _ => return "Unknown".to_string(),
    };
    format!("{verb}{noun}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(method: &str, has_key: bool, params: &[&str], copy: bool) -> String {
        let has_param = |p: &str| params.contains(&p);
        let list_type = params.contains(&"list-type").then_some("2");
        operation_name(&OperationInput {
            method,
            has_bucket: true,
            has_key,
            has_param: &has_param,
            list_type,
            has_copy_source: copy,
        })
    }

    #[test]
    fn object_actions() {
        assert_eq!(name("GET", true, &[], false), "GetObject");
        assert_eq!(name("PUT", true, &[], false), "PutObject");
        assert_eq!(name("PUT", true, &[], true), "CopyObject");
        assert_eq!(name("HEAD", true, &[], false), "HeadObject");
        assert_eq!(name("DELETE", true, &[], false), "DeleteObject");
    }

    #[test]
    fn sub_resources() {
        assert_eq!(name("GET", true, &["acl"], false), "GetObjectAcl");
        assert_eq!(name("PUT", true, &["tagging"], false), "PutObjectTagging");
        assert_eq!(
            name("DELETE", true, &["tagging"], false),
            "DeleteObjectTagging"
        );
        assert_eq!(name("GET", false, &["acl"], false), "GetBucketAcl");
        assert_eq!(
            name("GET", false, &["location"], false),
            "GetBucketLocation"
        );
        assert_eq!(
            name("PUT", false, &["versioning"], false),
            "PutBucketVersioning"
        );
        assert_eq!(name("POST", true, &["restore"], false), "RestoreObject");
    }

    #[test]
    fn bucket_actions() {
        assert_eq!(name("GET", false, &["list-type"], false), "ListObjectsV2");
        assert_eq!(name("GET", false, &[], false), "ListObjects");
        assert_eq!(
            name("GET", false, &["versions"], false),
            "ListObjectVersions"
        );
        assert_eq!(name("POST", false, &["delete"], false), "DeleteObjects");
        assert_eq!(name("HEAD", false, &[], false), "HeadBucket");
    }

    #[test]
    fn multipart_actions() {
        assert_eq!(
            name("POST", true, &["uploads"], false),
            "CreateMultipartUpload"
        );
        assert_eq!(
            name("PUT", true, &["uploadId", "partNumber"], false),
            "UploadPart"
        );
        assert_eq!(
            name("PUT", true, &["uploadId", "partNumber"], true),
            "UploadPartCopy"
        );
        assert_eq!(
            name("POST", true, &["uploadId"], false),
            "CompleteMultipartUpload"
        );
        assert_eq!(
            name("DELETE", true, &["uploadId"], false),
            "AbortMultipartUpload"
        );
        assert_eq!(name("GET", true, &["uploadId"], false), "ListParts");
        assert_eq!(
            name("GET", false, &["uploads"], false),
            "ListMultipartUploads"
        );
    }

    #[test]
    fn service_level() {
        let has_param = |_: &str| false;
        let input = OperationInput {
            method: "GET",
            has_bucket: false,
            has_key: false,
            has_param: &has_param,
            list_type: None,
            has_copy_source: false,
        };
        assert_eq!(operation_name(&input), "ListBuckets");
    }
}

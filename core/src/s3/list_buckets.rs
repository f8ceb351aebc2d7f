//! The ListBuckets response (`GET /`), which the proxy answers from its own
//! bucket map instead of asking any backend.

use super::error::push_escaped;

/// Creation date reported for every bucket: the proxy does not know when a
/// backend bucket was created, and clients only display this value.
const CREATION_DATE: &str = "2000-01-01T00:00:00.000Z";

/// Renders `ListAllMyBucketsResult` listing `buckets` in the given order.
pub fn list_buckets_xml<'a>(owner: &str, buckets: impl IntoIterator<Item = &'a str>) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <ListAllMyBucketsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Owner><ID>",
    );
    push_escaped(&mut xml, owner);
    xml.push_str("</ID><DisplayName>");
    push_escaped(&mut xml, owner);
    xml.push_str("</DisplayName></Owner><Buckets>");
    for bucket in buckets {
        xml.push_str("<Bucket><Name>");
        push_escaped(&mut xml, bucket);
        xml.push_str("</Name><CreationDate>");
        xml.push_str(CREATION_DATE);
        xml.push_str("</CreationDate></Bucket>");
    }
    xml.push_str("</Buckets></ListAllMyBucketsResult>");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_each_bucket_once() {
        let xml = list_buckets_xml("client", ["a", "b.c"]);
        assert!(xml.contains("<Bucket><Name>a</Name>"));
        assert!(xml.contains("<Bucket><Name>b.c</Name>"));
        assert_eq!(xml.matches("<Bucket>").count(), 2);
    }
}

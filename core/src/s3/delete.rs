//! The keys listed in a DeleteObjects request body, so that authorization can
//! consider every object the request deletes.

use quick_xml::events::Event;
use quick_xml::Reader;

use super::error::S3Error;

/// Max size of a DeleteObjects body the proxy reads to list its keys. S3
/// accepts up to 1000 keys of up to 1024 bytes each; 2 MiB holds that with
/// XML markup unless most characters are escaped.
pub const MAX_DELETE_OBJECTS_BODY: usize = 2 * 1024 * 1024;

/// Returns the `<Key>` of every `<Object>` in a `<Delete>` document, in order.
pub fn parse_delete_keys(xml: &[u8]) -> Result<Vec<String>, S3Error> {
    let malformed = |detail: String| {
        S3Error::new(
            400,
            "MalformedXML",
            format!("The XML you provided was not well-formed or did not validate against our published schema: {detail}"),
        )
    };
    let mut reader = Reader::from_reader(xml);
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut keys = Vec::new();
    let mut current_key: Option<String> = None;
    let mut buffer = Vec::new();
    loop {
        match reader.read_event_into(&mut buffer) {
            Ok(Event::Start(start)) => {
                let name = start.local_name().as_ref().to_vec();
                if name == b"Key" && path.last().map(Vec::as_slice) == Some(b"Object") {
                    current_key = Some(String::new());
                }
                path.push(name);
            }
            Ok(Event::End(_)) => {
                let name = path.pop().unwrap_or_default();
                if name == b"Key" {
                    if let Some(key) = current_key.take() {
                        keys.push(key);
                    }
                }
            }
            Ok(Event::Empty(empty)) => {
                if empty.local_name().as_ref() == b"Key"
                    && path.last().map(Vec::as_slice) == Some(b"Object")
                {
                    keys.push(String::new());
                }
            }
            Ok(Event::Text(text)) => {
                if let Some(key) = current_key.as_mut() {
                    let unescaped = text
                        .unescape()
                        .map_err(|error| malformed(error.to_string()))?;
                    key.push_str(&unescaped);
                }
            }
            Ok(Event::CData(data)) => {
                if let Some(key) = current_key.as_mut() {
                    key.push_str(&String::from_utf8_lossy(&data));
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(error) => return Err(malformed(error.to_string())),
        }
        buffer.clear();
    }
    if !path.is_empty() {
        return Err(malformed("the document ends inside an element".to_string()));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_keys_in_order() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
            <Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
              <Object><Key>a/1.txt</Key></Object>
              <Object><Key>b &amp; c</Key><VersionId>v1</VersionId></Object>
              <Quiet>true</Quiet>
            </Delete>"#;
        assert_eq!(parse_delete_keys(xml).unwrap(), vec!["a/1.txt", "b & c"]);
    }

    #[test]
    fn malformed_xml_rejected() {
        let error = parse_delete_keys(b"<Delete><Object><Key>x</Object>").unwrap_err();
        assert_eq!(error.code, "MalformedXML");
    }

    #[test]
    fn truncated_document_rejected() {
        let error = parse_delete_keys(b"<Delete><Object><Key>x</Key>").unwrap_err();
        assert_eq!(error.code, "MalformedXML");
    }
}

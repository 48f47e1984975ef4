//! SNS: publish a rendered notification.

use aws_sdk_sns::types::MessageAttributeValue;

use super::aws_error;
use crate::error::Error;
use crate::notify::{Publisher, Rendered};

#[derive(Clone, Debug)]
pub struct Sns {
    client: aws_sdk_sns::Client,
}

impl Sns {
    pub fn new(client: aws_sdk_sns::Client) -> Self {
        Self { client }
    }
}

impl Publisher for Sns {
    async fn publish(&self, m: &Rendered) -> Result<String, Error> {
        let mut req = self
            .client
            .publish()
            .topic_arn(&m.topic_arn)
            .subject(&m.subject)
            .message_structure("json")
            .message(&m.message);
        for (name, value) in &m.attributes {
            let attribute = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| Error::Aws {
                    operation: "sns:Publish",
                    message: format!("message attribute {name}: {e}"),
                    advice: "A bug in building the request; report it",
                    retry: crate::error::Retry::Never,
                })?;
            req = req.message_attributes(*name, attribute);
        }
        let out = req.send().await.map_err(|e| aws_error("sns:Publish", e))?;
        Ok(out.message_id().unwrap_or_default().to_owned())
    }
}

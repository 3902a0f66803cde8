// The six translations `cargo bench --bench translate` measures: `(from, to, typical
// frame)`, one per dialect, each into another dialect. Included by the bench and by
// tests/it/relay_prop.rs (which checks each takes the relay).
const CASES: [(&str, &str, &str); 6] = [
    (
        "nexus",
        "clerk",
        r#"{"event":"SEND_MSG","traceId":"7b0c1f7e-4a55-4a0e-9d8a-0b1b5b1f1a01","data":{"roomId":"3f2a9c1e-1111-4b7c-9a55-0c0ffee00001","type":"TEXT","contentText":"Hello, room","clientRef":"a3c9e1f2-2222-4d3e-8f10-0c0ffee00002"}}"#,
    ),
    (
        "clerk",
        "nexus",
        r#"["message:send",{"content":"Hello world, this is a typical chat message","channelId":"channel-123","tempId":"temp-123"}]"#,
    ),
    (
        "phase10",
        "salala",
        r#"["messages:new",{"conversationId":"conv-42","message":{"id":"m_1","content":"Ship it","createdAt":"2025-03-01T09:00:00.000Z","status":"sent"},"senderId":"usr_1","recipients":["usr_1","usr_2"]}]"#,
    ),
    (
        "salala",
        "chat-service",
        r#"["sendMessage",{"conversationId":"c-1","content":"hey there, how are you doing today?","replyToId":"m-0"}]"#,
    ),
    (
        "chat-service",
        "webhook",
        r#"["message:new",{"id":"msg_1","conversationId":"conv_1","senderId":"ext_42","content":"Hi all","attachments":[],"replyTo":null,"createdAt":"2024-01-15T10:30:00.000Z"}]"#,
    ),
    (
        "webhook",
        "nexus",
        r#"{"id":"evt_abc123","type":"message.created","timestamp":"2024-01-15T10:30:00.000Z","data":{"messageId":"msg_1","conversationId":"conv_1","senderId":"ext_42","content":"Hi all","createdAt":"2024-01-15T10:30:00.000Z"}}"#,
    ),
];

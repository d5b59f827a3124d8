import Sidobe
import Testing

@Suite("Local validation")
struct ValidationTests {
    @Test(arguments: ["+628123123123", "+14155552671", "+12345678", "+123456789012345"])
    func validPhones(phone: String) {
        #expect(RequestValidation.phoneProblem(phone) == nil)
    }

    @Test(arguments: [
        ("", "is required"),
        ("628123123123", "must be in E.164 format"),
        ("+62 812 3123", "only digits"),
        ("+62-8123123123", "only digits"),
        ("+1234567", "8 to 15 digits"),
        ("+1234567890123456", "8 to 15 digits"),
        ("+0628123123123", "not 0"),
        ("+", "8 to 15 digits"),
        ("+٦٢٨١٢٣١٢٣١٢٣", "only digits"),
    ])
    func invalidPhones(phone: String, expected: String) throws {
        let problem = try #require(RequestValidation.phoneProblem(phone))
        #expect(problem.contains(expected), "\(phone): \(problem)")
    }

    @Test func sendValidationNamesTheField() {
        func field(_ message: OutgoingMessage) -> String? {
            do {
                try message.validate()
                return nil
            } catch {
                if case .invalidField(let f) = error { return f.field }
                return "unexpected \(error)"
            }
        }
        #expect(field(.text(to: "+628123123123", "hi")) == nil)
        #expect(field(.text(to: "08123", "hi")) == "phone")
        #expect(field(.text(to: "+628123123123", "")) == "message")
        #expect(field(.image(to: "+628123123123", url: "https://x.test/a.png")) == nil)
        #expect(field(.image(to: "+628123123123", url: "https://x.test/a.JPEG?size=2")) == nil)
        #expect(field(.image(to: "+628123123123", url: "https://x.test/a.gif")) == "image_url")
        #expect(field(.image(to: "+628123123123", url: "https://x.test/png")) == "image_url")
        #expect(field(.image(to: "+628123123123", url: "ftp://x.test/a.png")) == "image_url")
        #expect(field(.image(to: "+628123123123", url: "")) == "image_url")
        for ext in ["pdf", "doc", "docx", "ppt", "pptx", "xls", "xlsx"] {
            #expect(field(.document(to: "+628123123123", url: "https://x.test/f.\(ext)", name: "Invoice")) == nil)
        }
        #expect(field(.document(to: "+628123123123", url: "https://x.test/f.exe", name: "Invoice")) == "document_url")
        #expect(field(.document(to: "+628123123123", url: "https://x.test/f.pdf", name: "  ")) == "document_name")
        #expect(field(.document(to: "+628123123123", url: "https://x.test/f.pdf", name: "")) == "document_name")
    }

    @Test func requestBodiesUseSidobeFieldNames() throws {
        let image = OutgoingMessage.image(to: "+628123123123", url: "https://x.test/a.png", caption: "look", isAsync: true)
        #expect(image.endpointPath == "send-message-image")
        let json = try String(decoding: JSONEncoderSorted.encode(image.requestBody), as: UTF8.self)
        #expect(json == #"{"image_url":"https:\/\/x.test\/a.png","is_async":true,"message":"look","phone":"+628123123123"}"#)
        let doc = OutgoingMessage.document(to: "+628123123123", url: "https://x.test/f.pdf", name: "Invoice")
        #expect(doc.endpointPath == "send-message-doc")
        let docJSON = try String(decoding: JSONEncoderSorted.encode(doc.requestBody), as: UTF8.self)
        #expect(docJSON == #"{"document_name":"Invoice","document_url":"https:\/\/x.test\/f.pdf","is_async":false,"phone":"+628123123123"}"#)
        #expect(OutgoingMessage.text(to: "+628123123123", "x").endpointPath == "send-message")
    }
}

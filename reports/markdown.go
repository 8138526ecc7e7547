package reports

import (
	"bytes"
	"embed"
	htmltemplate "html/template"
	"io"
	"strings"
	"text/template"
	"time"
)

// templates are the report pages, both rendered from a reportView.
//
//go:embed templates/report.md.tmpl templates/report.html.tmpl
var templates embed.FS

var (
	markdownTemplate = template.Must(template.New("report.md.tmpl").Funcs(template.FuncMap{"md": mdEscape, "cell": mdCell}).
				ParseFS(templates, "templates/report.md.tmpl"))
	pageTemplate = htmltemplate.Must(htmltemplate.ParseFS(templates, "templates/report.html.tmpl"))
)

// WriteMarkdown writes dir/report.md.
func WriteMarkdown(dir string, r *Result) error {
	var buf bytes.Buffer
	if err := Markdown(&buf, r); err != nil {
		return err
	}
	return writeFile(dir, MarkdownFile, buf.Bytes())
}

// Markdown writes the report in Markdown to w.
func Markdown(w io.Writer, res *Result) error {
	if err := markdownTemplate.Execute(w, newView(res, nil, time.Time{})); err != nil {
		return err
	}
	return simulationMarkdown(w, res)
}

// mdEscape keeps user text from breaking a table or the markup.
func mdEscape(s string) string {
	r := strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ", "`", "'", "<", "&lt;", ">", "&gt;")
	return r.Replace(s)
}

// mdCell pads a table cell's text: " text ", or " " when empty.
func mdCell(s string) string {
	if s == "" {
		return " "
	}
	return " " + s + " "
}

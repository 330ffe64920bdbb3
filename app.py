"""Placeholder until the Gradio app lands (see README): shows that the install works."""

import gradio as gr

with gr.Blocks(title="MANGO") as demo:
    gr.Markdown("# MANGO\nThe app is being built; the flow library (`mango.flow`) is ready.")

if __name__ == "__main__":
    demo.launch()
